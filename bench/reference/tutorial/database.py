import os

from sqlalchemy import create_engine
from sqlalchemy.orm import declarative_base, sessionmaker

# The tutorial hard-codes "postgresql://user:password@localhost/books"; the benchmark
# passes the URL of its own PostgreSQL instead. Everything else is as the tutorial has it.
SQLALCHEMY_DATABASE_URL = os.environ.get(
    "SQLALCHEMY_DATABASE_URL", "postgresql://user:password@localhost/books"
)

engine = create_engine(SQLALCHEMY_DATABASE_URL)
SessionLocal = sessionmaker(autocommit=False, autoflush=False, bind=engine)

Base = declarative_base()
