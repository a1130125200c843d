"""The local appraiser: pure appraisal code (CoRIM, evidence schemes) that runs in this process."""
