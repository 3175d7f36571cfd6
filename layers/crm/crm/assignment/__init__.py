"""Assignment: rules, least-loaded choice, routing to sales or nurture, waiting queues, reassignment."""
