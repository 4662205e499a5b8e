"""The HTTP layer of jobs: both API halves (views and URLs per half), what they share, and the
bodies they accept and answer."""
