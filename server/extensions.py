"""How packages plug into the server without the core knowing them.

An extension contributes HTTP/WebSocket routes and may run background work for the app's
lifetime (e.g. the QA worker). ``start`` runs in the lifespan once the bus, store and
registry are open — models may still be loading, so work that needs them awaits
``services.ready``. Extensions find each other through ``services.extensions``.

Optional hook: ``async on_agent_frame(agent_id, frame) -> dict | None`` answers a client
frame on the agent socket (the answer goes back on that socket); None means "not mine".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from server.services import Services


class Extension(Protocol):
    name: str

    def routes(self) -> list[BaseRoute]: ...

    async def start(self, services: Services) -> None: ...

    async def stop(self) -> None: ...


def default_extensions() -> list[Extension]:
    """The extensions a plain ``callassist serve`` runs, in start order."""
    from analytics.extension import AnalyticsExtension
    from qa.extension import QAExtension
    from routing.extension import RoutingExtension
    from server.alert_feed import AlertFeedExtension
    from server.feedback import FeedbackExtension
    from server.kb_api import KnowledgeBaseExtension
    from wfm.api import WfmExtension

    # Analytics after routing: it opens retention cases through the routing extension.
    return [
        KnowledgeBaseExtension(),
        RoutingExtension(),
        QAExtension(),
        WfmExtension(),
        FeedbackExtension(),
        AlertFeedExtension(),
        AnalyticsExtension(),
    ]
