"""What Triton gets: ModelConfig protobufs and model repositories, written atomically."""
