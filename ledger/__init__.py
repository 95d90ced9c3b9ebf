"""The per-device signed attendance log: entries, Merkle tree, checkpoints, storage, verification."""
