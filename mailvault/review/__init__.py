"""Supervisory review (FINRA 3110-style): policies say whose mail is supervised, which
lexicon terms and what random sample put a message in a queue; reviewers decide each item;
reports say what an examiner asks for. The use cases (``usecases/reviewing.py``) check who
may do what; this package does the work and writes its audit entries."""
