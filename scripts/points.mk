# Runs sweep points as independent jobs: make -f scripts/points.mk -j N POINTS="..." PROGRAM=... ARGS="..." [FLAG=--only-probe]
# (the main Makefile is .NOTPARALLEL; this one is meant for -j). Each point
# lands in OUT/.points/ and the chapter run then assembles them.
POINTS ?=
PROGRAM ?=
ARGS ?=
FLAG ?= --only-point
.PHONY: all $(POINTS)
all: $(POINTS)
$(POINTS):
	$(PROGRAM) $(ARGS) $(FLAG) $@
