"""Skills-based routing: explainable scores, a live queue without starvation, atomic claims."""
