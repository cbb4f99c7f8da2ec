from dagu_ci.cli import console

console()
