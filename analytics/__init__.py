"""Customer analytics: repeat callers, issue clusters and emerging issues, explainable churn
propensity with retention outreach through routing, KPIs and an honest ROI model."""
