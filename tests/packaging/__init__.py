"""watchkeeper as a user installs it: a wheel of the working tree in a fresh virtualenv, run
from another directory, with no source tree on the path. Marked `slow`; run in the normal
suite (pip needs the package index, which CI reaches)."""
