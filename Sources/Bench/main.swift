print("sutra-bench")
