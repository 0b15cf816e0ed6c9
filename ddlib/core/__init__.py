"""Infrastructure every other part uses: the artifact cache, named random streams, the device,
progress bars, figures and result tables with provenance."""
