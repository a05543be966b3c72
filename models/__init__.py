"""Neural models (torch only): decoder, timbre VAE, text-to-mel. Filled in by later issues."""
