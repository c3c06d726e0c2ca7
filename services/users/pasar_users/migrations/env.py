from pasar_kit.migrations import run_env
from pasar_users.tables import metadata

run_env(metadata)
