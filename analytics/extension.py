"""Analytics as a server extension: routes under /v1/analytics and /v1/customers, the KPI page,
and the service (ingestion, scheduled runs, alerts, retention outreach).

Other extensions: ``services.extensions["analytics"].service``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from analytics import api
from analytics.config import AnalyticsConfig, AnalyticsSettings
from analytics.service import AnalyticsService

if TYPE_CHECKING:
    from server.services import Services

log = logging.getLogger(__name__)


class AnalyticsExtension:
    name = "analytics"

    def __init__(
        self, config: AnalyticsConfig | None = None, settings: AnalyticsSettings | None = None
    ) -> None:
        self.settings = settings or AnalyticsSettings()
        self.config = config or AnalyticsConfig.load(self.settings.config)
        self.service: AnalyticsService | None = None

    def routes(self) -> list[BaseRoute]:
        return api.routes()

    async def start(self, services: Services) -> None:
        self.service = AnalyticsService(services, self.config, self.settings)
        await self.service.start()
        log.info("analytics started (clustering: %s)", self.config.clustering.method)

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
            self.service = None
