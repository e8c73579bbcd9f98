"""Events in, rendered and logged messages out to the priority send queue."""
