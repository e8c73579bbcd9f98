"""What the producers, the consumers and the operators agree on."""
