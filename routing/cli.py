"""``callassist routing ...``: the simulator (and room for more routing tools)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

routing_app = typer.Typer(help="Skills-based routing tools.", no_args_is_help=True)


@routing_app.command("simulate")
def simulate_command(
    agents: int = typer.Option(..., min=1, max=20_000, help="Agents in the pool."),
    calls_per_hour: float = typer.Option(..., "--calls-per-hour", min=1, help="Poisson arrival rate."),
    hours: float = typer.Option(..., min=0.01, max=168, help="Hours of arrivals (the queue then drains)."),
    seed: int = typer.Option(0, help="Seed for the agent pool and the arrivals."),
    plot: Path | None = typer.Option(None, help="Write a PNG plot here (needs matplotlib)."),
    config: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Routing YAML for the router."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the figures as JSON instead of tables."),
) -> None:
    """Simulate a center: this router vs longest-idle vs round-robin on identical arrivals."""
    import time

    from routing.config import RoutingConfig
    from routing.simulate import plot as draw
    from routing.simulate import simulate, table

    started = time.perf_counter()
    results = simulate(agents, calls_per_hour, hours, seed=seed, config=RoutingConfig.load(config))
    if json_out:
        typer.echo(json.dumps([r.row() for r in results], indent=2))
    else:
        offered_erlangs = calls_per_hour / 3600 * results[1].aht_s if len(results) > 1 else 0.0
        typer.echo(
            f"{agents} agents, {calls_per_hour:g} calls/h for {hours:g} h (seed {seed}); "
            f"{results[0].offered} calls offered; service level = answered within 20 s / (answered + abandoned)\n"
        )
        typer.echo(table(results))
        if offered_erlangs:
            typer.echo(f"longest-idle offered load {offered_erlangs:.0f} Erlangs on {agents} agents")
        typer.echo(f"simulated in {time.perf_counter() - started:.1f} s")
    if plot is not None:
        try:
            draw(results, str(plot))
        except RuntimeError as exc:
            raise typer.BadParameter(str(exc), param_hint="--plot") from None
        typer.echo(f"plot written to {plot}")
