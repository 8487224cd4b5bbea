"""eDiscovery: cases (custodians, saved queries, holds, notes, their chain of custody) and
defensible exports (native files, manifests, a Concordance load file, a signed summary, and
the check a receiving party runs on them without the vault)."""
