"""Tools: typed functions with schemas, and the sandboxed back ends behind them."""
