"""HTTP routes: parse, call one domain function, shape the response."""
