"""Row schema and typed configuration shared by every stage and flow."""
