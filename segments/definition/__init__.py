"""What a segment is: `compiler` turns a stored definition (a condition tree) into SQL over the
contacts and tells what can change its membership; `builder` turns the builder form into a
definition and back. Pure: no writes."""
