"""Image folders, synthetic faces and the seeded test-set builder with its manifest."""
