print("sutra-sim")
