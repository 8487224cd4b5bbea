"""Everything that brings mail in. Every source ends in pipeline.archive_many()."""
