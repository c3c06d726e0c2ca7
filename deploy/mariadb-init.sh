#!/bin/sh
# First start of the compose MariaDB only (docker-entrypoint-initdb.d): one database and
# one user per service, each user allowed into its own database alone. The passwords come
# from deploy/pasar.env through compose.yaml.
set -eu
for service in users products orders; do
  case "$service" in
    users) password="$PASAR_USERS_DB_PASSWORD" ;;
    products) password="$PASAR_PRODUCTS_DB_PASSWORD" ;;
    orders) password="$PASAR_ORDERS_DB_PASSWORD" ;;
  esac
  mariadb --user=root --password="$MARIADB_ROOT_PASSWORD" <<SQL
CREATE DATABASE IF NOT EXISTS pasar_$service CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'pasar_$service'@'%' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON pasar_$service.* TO 'pasar_$service'@'%';
SQL
done
