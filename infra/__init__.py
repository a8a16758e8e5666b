"""The AWS deployment of Bookshelf as a CDK app.

Map: `config` (one typed config per environment) → `app` (one `BooksStack` per environment)
→ `stack` (composes the boxes and wires them) → `network`, `database`, `service` (one
construct per box of the architecture). `diagram` draws the synthesized template as Mermaid.
"""
