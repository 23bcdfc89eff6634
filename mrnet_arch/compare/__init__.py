"""Visual comparisons of super-resolution outputs: crops, paper-style figures and a static HTML page."""
