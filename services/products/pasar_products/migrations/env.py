from pasar_kit.migrations import run_env
from pasar_products.tables import metadata

run_env(metadata)
