import crud
import models
import schemas
from database import SessionLocal, engine
from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy.orm import Session

models.Base.metadata.create_all(bind=engine)

app = FastAPI()


# Dependency
def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


@app.post("/books", response_model=schemas.Book)
def create_book(book: schemas.BookCreate, db: Session = Depends(get_db)):
    db_book = crud.get_book_by_name(db, name=book.book_name)
    if db_book:
        raise HTTPException(status_code=400, detail="Book already registered")
    return crud.create_book(db=db, book=book)


@app.get("/books", response_model=list[schemas.Book])
def read_books(
    skip: int = 0,
    limit: int = 100,
    name: str | None = None,
    q: str | None = None,
    db: Session = Depends(get_db),
):
    if name is not None:
        db_book = crud.get_book_by_name(db, name=name)
        return [db_book] if db_book else []
    if q is not None:
        return crud.search_books(db, q=q, skip=skip, limit=limit)
    return crud.get_books(db, skip=skip, limit=limit)


@app.get("/books/{book_id}", response_model=schemas.Book)
def read_book(book_id: int, db: Session = Depends(get_db)):
    db_book = crud.get_book(db, book_id=book_id)
    if db_book is None:
        raise HTTPException(status_code=404, detail="Book not found")
    return db_book


@app.patch("/books/{book_id}", response_model=schemas.Book)
def update_book(book_id: int, book: schemas.BookUpdate, db: Session = Depends(get_db)):
    db_book = crud.get_book(db, book_id=book_id)
    if db_book is None:
        raise HTTPException(status_code=404, detail="Book not found")
    return crud.update_book(db=db, db_book=db_book, book=book)
