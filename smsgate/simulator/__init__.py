"""smsgate.simulator"""
