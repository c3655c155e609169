"""sets stage of shardstream."""
