"""Live capture: the SMTP endpoint, the Postfix milter, the spool that makes both durable."""
