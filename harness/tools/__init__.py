"""Tools that measure the harness itself, above everything else: `bench` (model-steps/s, the
cost model's rates, the sweep's driver at Table 1's scale) and `gpucheck` (the one-shot check of
a GPU: correctness, throughput, projection, a slice), with what they share (`measure`)."""
