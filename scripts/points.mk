# Runs sweep points as independent jobs: make -f scripts/points.mk -j N POINTS="..." PROGRAM=... ARGS="..."
# (the main Makefile is .NOTPARALLEL; this one is meant for -j). Each point
# lands in OUT/.points/ and the chapter run then assembles them.
POINTS ?=
PROGRAM ?=
ARGS ?=
.PHONY: all $(POINTS)
all: $(POINTS)
$(POINTS):
	$(PROGRAM) $(ARGS) --threads 1 --only-point $@
