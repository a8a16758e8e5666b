import models
import schemas
from sqlalchemy.orm import Session


def get_book(db: Session, book_id: int):
    return db.query(models.Book).filter(models.Book.id == book_id).first()


def get_book_by_name(db: Session, name: str):
    return db.query(models.Book).filter(models.Book.book_name == name).first()


def get_books(db: Session, skip: int = 0, limit: int = 100):
    return db.query(models.Book).offset(skip).limit(limit).all()


def search_books(db: Session, q: str, skip: int = 0, limit: int = 100):
    return (
        db.query(models.Book)
        .filter(models.Book.book_name.ilike(f"%{q}%") | models.Book.author.ilike(f"%{q}%"))
        .offset(skip)
        .limit(limit)
        .all()
    )


def create_book(db: Session, book: schemas.BookCreate):
    db_book = models.Book(**book.model_dump())
    db.add(db_book)
    db.commit()
    db.refresh(db_book)
    return db_book


def update_book(db: Session, db_book: models.Book, book: schemas.BookUpdate):
    for key, value in book.model_dump(exclude_unset=True).items():
        setattr(db_book, key, value)
    db.commit()
    db.refresh(db_book)
    return db_book
