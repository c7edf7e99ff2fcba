"""What runs after the network, as pieces the engine composes: the texture put back from the residual
(`detail`), collaborative Wiener filtering with the network's output as pilot (`wiener`), and the image's own
noise with the self-check's blend (`noise_level`)."""
