"""smsgate.modemd"""
