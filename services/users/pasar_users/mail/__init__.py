"""Mail to customers and admins: the outbox (``outbox``), templates, transports and the
sender job that drains the outbox into a transport, keeping the delivery ledger."""
