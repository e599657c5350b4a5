"""Reading CT volumes (NIfTI, NRRD, MHA/MHD, DICOM series) and discovering inputs."""
