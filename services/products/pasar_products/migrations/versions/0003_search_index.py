"""search index, vocabulary and synonyms

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 13:45:00.000000

The index is ``product_search`` (a product's analysed terms) plus what each database
builds natively on it: an FTS5 table kept in step by triggers (SQLite), a generated,
weighted ``tsvector`` with a GIN index (PostgreSQL), FULLTEXT indexes (MariaDB). Every
existing product is indexed here, with the same analysis the service uses.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from pasar_products.search.analysis import stem
from pasar_products.search.index import build_entries

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TERM = sa.String(60).with_variant(mysql.VARCHAR(60, collation='utf8mb4_bin'), 'mysql', 'mariadb')

# A starting list for an Indonesian shop; admins edit it (PUT /admin/search/synonyms/..).
SYNONYMS = {
    'hp': ['handphone', 'ponsel'],
    'hape': ['hp', 'handphone', 'ponsel'],
    'handphone': ['hp', 'ponsel'],
    'ponsel': ['hp', 'handphone'],
    'sepatu': ['shoes'],
    'shoes': ['sepatu'],
    'tas': ['bag'],
    'bag': ['tas'],
    'baju': ['kaos', 'kemeja'],
    'kaos': ['tshirt'],
    'tshirt': ['kaos'],
    'celana': ['pants'],
    'pants': ['celana'],
    'kopi': ['coffee'],
    'coffee': ['kopi'],
    'teh': ['tea'],
    'tea': ['teh'],
    'tv': ['televisi'],
    'televisi': ['tv'],
    'sabun': ['soap'],
    'soap': ['sabun'],
    'laptop': ['notebook'],
    'cas': ['charger'],
    'charger': ['cas'],
}


def upgrade() -> None:
    search = op.create_table('product_search',
    sa.Column('doc_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('product_id', sa.String(length=36), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('name_terms', sa.Text(), nullable=False),
    sa.Column('body_terms', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_product_search_product_id_products')),
    sa.PrimaryKeyConstraint('doc_id', name=op.f('pk_product_search')),
    sa.UniqueConstraint('product_id', name=op.f('uq_product_search_product_id'))
    )
    vocabulary = op.create_table('search_terms',
    sa.Column('term', TERM, nullable=False),
    sa.Column('products', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('term', name=op.f('pk_search_terms'))
    )
    synonyms = op.create_table('search_synonyms',
    sa.Column('term', TERM, nullable=False),
    sa.Column('expands_to', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('term', name=op.f('pk_search_synonyms'))
    )

    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect == 'sqlite':
        # External content: the terms are stored once, in product_search.
        op.execute(
            "CREATE VIRTUAL TABLE product_search_fts USING fts5("
            "name_terms, body_terms, content='product_search', content_rowid='doc_id', "
            "tokenize='unicode61', prefix='2 3')"
        )
        op.execute(
            "CREATE TRIGGER product_search_ai AFTER INSERT ON product_search BEGIN "
            "INSERT INTO product_search_fts(rowid, name_terms, body_terms) "
            "VALUES (new.doc_id, new.name_terms, new.body_terms); END"
        )
        op.execute(
            "CREATE TRIGGER product_search_ad AFTER DELETE ON product_search BEGIN "
            "INSERT INTO product_search_fts(product_search_fts, rowid, name_terms, body_terms) "
            "VALUES ('delete', old.doc_id, old.name_terms, old.body_terms); END"
        )
        op.execute(
            "CREATE TRIGGER product_search_au AFTER UPDATE ON product_search BEGIN "
            "INSERT INTO product_search_fts(product_search_fts, rowid, name_terms, body_terms) "
            "VALUES ('delete', old.doc_id, old.name_terms, old.body_terms); "
            "INSERT INTO product_search_fts(rowid, name_terms, body_terms) "
            "VALUES (new.doc_id, new.name_terms, new.body_terms); END"
        )
    elif dialect == 'postgresql':
        # The terms are ours already (analysed, stemmed), so the 'simple' configuration:
        # it only lower-cases, and a term of letters and digits stays one lexeme. Weights
        # (name A, the rest B) live on positions, which to_tsvector gives.
        op.execute(
            "ALTER TABLE product_search ADD COLUMN document tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('simple', name_terms), 'A') || "
            "setweight(to_tsvector('simple', body_terms), 'B')) STORED"
        )
        op.execute('CREATE INDEX ix_product_search_document ON product_search USING gin (document)')

    products = sa.table('products', sa.column('id'), sa.column('sku'), sa.column('name'),
                        sa.column('category'), sa.column('description'), sa.column('active'))
    rows = bind.execute(sa.select(products.c.id, products.c.sku, products.c.name,
                                  products.c.category, products.c.description,
                                  products.c.active)).all()
    entries, counts = build_entries(rows, dialect)
    for start in range(0, len(entries), 2000):
        op.bulk_insert(search, entries[start:start + 2000])
    if counts:
        op.bulk_insert(vocabulary, [{'term': t, 'products': n} for t, n in sorted(counts.items())])
    op.bulk_insert(synonyms, [
        {'term': stem(term), 'expands_to': ' '.join(stem(word) for word in expands_to)}
        for term, expands_to in SYNONYMS.items()
    ])

    if dialect in ('mysql', 'mariadb'):
        # After the backfill: building a FULLTEXT index once is faster than growing it.
        op.execute('CREATE FULLTEXT INDEX ft_product_search_name ON product_search (name_terms)')
        op.execute(
            'CREATE FULLTEXT INDEX ft_product_search_all ON product_search (name_terms, body_terms)'
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for trigger in ('product_search_ai', 'product_search_ad', 'product_search_au'):
            op.execute(f'DROP TRIGGER {trigger}')
        op.execute('DROP TABLE product_search_fts')
    op.drop_table('search_synonyms')
    op.drop_table('search_terms')
    op.drop_table('product_search')
