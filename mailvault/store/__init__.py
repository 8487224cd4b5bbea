"""Where bytes live: volume files, blobs, encryption, and the catalog that points at them."""
