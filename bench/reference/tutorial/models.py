from database import Base
from sqlalchemy import Column, Integer, String


class Book(Base):
    __tablename__ = "books"

    id = Column(Integer, primary_key=True, index=True)
    book_name = Column(String, index=True)
    author = Column(String)
    publisher = Column(String)
    published_year = Column(Integer)
    pages = Column(Integer)
