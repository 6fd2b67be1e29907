"""Running the server: command line, configuration, logs, metrics, demo, transcript."""
