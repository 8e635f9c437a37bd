"""carecoord operator tooling."""
