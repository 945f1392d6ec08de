"""Tables, plots and the HTML report, made from result files (never imports `bench.methods`)."""
