from relu_landscape.cli import console

console()
