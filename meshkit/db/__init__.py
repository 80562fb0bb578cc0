"""SQLAlchemy 2 async databases (SQLite by default, PostgreSQL by URL), column types and migrations."""
