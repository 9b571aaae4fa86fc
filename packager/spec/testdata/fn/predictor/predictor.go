package predictor
