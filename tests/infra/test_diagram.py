"""The architecture diagram is drawn from the synthesized template and kept in the docs."""

from pathlib import Path

from aws_cdk.assertions import Template

from infra import diagram

DOCS = Path(__file__).resolve().parents[2] / "README.md"


def test_diagram_draws_the_security_group_paths(dev: Template) -> None:
    drawn = diagram.mermaid(dev.to_json())
    assert "internet -- 80 --> alb" in drawn
    assert "alb -- 8000 --> service" in drawn
    assert "service -- 5432 --> db" in drawn
    assert "DB_SECRET" in drawn and "BOOKSHELF_API_KEYS" in drawn
    assert "db -. postgresql log .-> logs" in drawn
    assert "nat" not in drawn


def test_prod_diagram_shows_private_tasks_behind_nat(prod: Template) -> None:
    drawn = diagram.mermaid(prod.to_json())
    assert 'subgraph private["Private subnets"]' in drawn
    assert "service -. AWS APIs .-> nat" in drawn
    assert "Multi-AZ" in drawn


def test_update_rewrites_only_the_marked_block(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"before\n{diagram.START}\nold\n{diagram.END}\nafter\n")
    diagram.update(doc, "flowchart LR\n")
    assert doc.read_text() == (
        f"before\n{diagram.START}\n```mermaid\nflowchart LR\n```\n{diagram.END}\nafter\n"
    )


def test_docs_diagram_is_the_one_generated_from_dev(dev: Template) -> None:
    """Run `make diagram` when this fails."""
    expected = f"{diagram.START}\n```mermaid\n{diagram.mermaid(dev.to_json())}```\n{diagram.END}"
    assert expected in DOCS.read_text()
