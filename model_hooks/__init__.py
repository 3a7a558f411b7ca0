"""Heavy models (language detector, embedders, trainers), each loaded once per process."""
