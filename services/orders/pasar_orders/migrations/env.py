from pasar_kit.migrations import run_env
from pasar_orders.tables import metadata

run_env(metadata)
